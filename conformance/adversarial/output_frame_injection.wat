;; Two JSON values, `1,"ok":false`: spliced unchecked into the reply frame it would inject a key.
(module
  (memory (export "memory") 1)
  (data (i32.const 800) "\0c\00\00\001,\22ok\22:false")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 800))
)
