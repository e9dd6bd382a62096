;; Reports an error, then traps: the trap wins (the call did not return), the message is kept.
(module
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "about to crash")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call $error (i32.const 16) (i32.const 14))
    unreachable)
)
