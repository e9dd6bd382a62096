;; The grow bomb runs in `_initialize`, before the capability (and before the input is written).
(module
  (memory (export "memory") 1)
  (func $grow_until_refused (export "_initialize")
    (loop $again
      (br_if $again (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
)
