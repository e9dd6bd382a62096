;; table.grow by 10,000 null elements until refused (-1), then trap. Tables are limited to
;; 100,000 elements per store.
(module
  (memory (export "memory") 1)
  (table $t 0 funcref)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $grow_table_until_refused (export "run") (param $ptr i32) (param $len i32) (result i32)
    (loop $again
      (br_if $again
        (i32.ne (table.grow $t (ref.null func) (i32.const 10000)) (i32.const -1))))
    unreachable)
)
