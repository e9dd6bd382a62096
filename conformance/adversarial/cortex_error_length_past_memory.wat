;; cortex.error(65000, 1000): starts in memory, ends 464 bytes past its end.
(module
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call $error (i32.const 65000) (i32.const 1000))
    (i32.const 0))
)
