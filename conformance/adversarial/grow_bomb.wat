;; memory.grow one page at a time until refused (-1), then trap.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $grow_until_refused (export "run") (param $ptr i32) (param $len i32) (result i32)
    (loop $again
      (br_if $again (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)
)
