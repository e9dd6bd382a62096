;; cortex.error with invalid UTF-8 and a message longer than 4 KiB (8 KiB of 0xFF).
(module
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (memory.fill (i32.const 4096) (i32.const 255) (i32.const 8192))
    (call $error (i32.const 4096) (i32.const 8192))
    (i32.const 2048))
)
