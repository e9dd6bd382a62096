;; Valid UTF-8, not JSON.
(module
  (memory (export "memory") 1)
  (data (i32.const 620) "\09\00\00\00{not json")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 620))
)
