;; call_indirect through element 1, which is null.
(module
  (memory (export "memory") 1)
  (type $t (func (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $one)
  (func $one (type $t) (i32.const 1))
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $call_null (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call_indirect (type $t) (i32.const 1)))
)
