;; A reactor whose `_initialize` (called by the host before every call) never returns.
(module
  (memory (export "memory") 1)
  (func $init_forever (export "_initialize") (loop $again (br $again)))
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
)
