;; The allocator returns 0: the host has nowhere to write the input.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 0))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
)
