;; "<C0 A2>": an overlong encoding of '"' (a classic filter bypass), invalid UTF-8.
(module
  (memory (export "memory") 1)
  (data (i32.const 600) "\04\00\00\00\22\c0\a2\22")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 600))
)
