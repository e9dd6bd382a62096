;; [1e400]: a number that overflows a double.
(module
  (memory (export "memory") 1)
  (data (i32.const 700) "\07\00\00\00[1e400]")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 700))
)
