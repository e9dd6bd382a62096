;; call_indirect expecting (i32) -> i32 on a function of type () -> i64.
(module
  (memory (export "memory") 1)
  (type $wanted (func (param i32) (result i32)))
  (type $actual (func (result i64)))
  (table 1 funcref)
  (elem (i32.const 0) $wrong_type)
  (func $wrong_type (type $actual) (i64.const 1))
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $call_with_wrong_type (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call_indirect (type $wanted) (i32.const 3) (i32.const 0)))
)
