;; "<0xff><0xfe>": bytes that never occur in UTF-8.
(module
  (memory (export "memory") 1)
  (data (i32.const 600) "\04\00\00\00\22\ff\fe\22")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 600))
)
