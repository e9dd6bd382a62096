;; Two functions calling each other through a table (call_indirect), forever.
(module
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $ping $pong)
  (func $ping (type $t) (i32.add (call_indirect (type $t) (local.get 0) (i32.const 1)) (i32.const 1)))
  (func $pong (type $t) (i32.add (call_indirect (type $t) (local.get 0) (i32.const 0)) (i32.const 1)))
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call $ping (i32.const 0)))
)
