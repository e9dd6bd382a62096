;; An active data segment at offset 65530 with 16 bytes: instantiation must fail.
(module
  (memory (export "memory") 1)
  (data (i32.const 65530) "0123456789abcdef")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
)
