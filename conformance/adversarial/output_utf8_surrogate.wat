;; "<U+D800 encoded as ED A0 80>": a UTF-16 surrogate encoded in UTF-8 (CESU-8), invalid UTF-8.
(module
  (memory (export "memory") 1)
  (data (i32.const 600) "\05\00\00\00\22\ed\a0\80\22")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 600))
)
