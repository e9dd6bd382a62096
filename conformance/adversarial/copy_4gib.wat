;; memory.copy of 4 GiB - 1 bytes from offset 1 to 0 in a 64 KiB memory.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $copy_4gib (export "run") (param $ptr i32) (param $len i32) (result i32)
    (memory.copy (i32.const 0) (i32.const 1) (i32.const -1))
    (i32.const 0))
)
