;; Imports cortex.log as (i32, i32) -> i32 instead of (i32, i32, i32) -> ().
(module
  (import "cortex" "log" (func $log (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call $log (local.get $ptr) (local.get $len)))
)
