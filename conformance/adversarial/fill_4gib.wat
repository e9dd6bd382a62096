;; memory.fill of 4 GiB - 1 bytes into a 64 KiB memory: bounds-checked before a byte is written.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $fill_4gib (export "run") (param $ptr i32) (param $len i32) (result i32)
    (memory.fill (i32.const 0) (i32.const 255) (i32.const -1))
    (i32.const 0))
)
