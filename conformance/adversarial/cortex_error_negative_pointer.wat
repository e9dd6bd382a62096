;; cortex.error(-16, 32): the pointer is 0xFFFFFFF0 unsigned and ptr+len wraps to 16 in 32 bits.
(module
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "a message at offset zero........")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call $error (i32.const -16) (i32.const 32))
    (i32.const 0))
)
