;; Imports a host function the cortex module does not have.
(module
  (import "cortex" "exec" (func $exec (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call $exec (local.get $ptr) (local.get $len)))
)
