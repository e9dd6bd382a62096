;; An active element segment at index 3 of a 2-element table: instantiation must fail.
(module
  (memory (export "memory") 1)
  (table 2 funcref)
  (elem (i32.const 3) $f)
  (func $f)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
)
