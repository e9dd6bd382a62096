;; Asks for 4 GiB at once (65535 more pages), then for as much as it can get one page at a time,
;; then spins until the deadline.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $grab_everything (export "run") (param $ptr i32) (param $len i32) (result i32)
    (drop (memory.grow (i32.const 65535)))
    (loop $again
      (br_if $again (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (loop $spin (br $spin))
    (i32.const 0))
)
