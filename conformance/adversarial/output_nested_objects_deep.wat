;; 20,000 nested objects {"a":{"a":...}}: deep enough to overflow a recursive decoder's stack.
(module
  (memory (export "memory") 4)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $at i32)
    (local.set $at (i32.const 4100))
    (loop $open  ;; {"a":  = 7B 22 61 22 3A
      (i32.store8 (local.get $at) (i32.const 123))
      (i32.store8 (i32.add (local.get $at) (i32.const 1)) (i32.const 34))
      (i32.store8 (i32.add (local.get $at) (i32.const 2)) (i32.const 97))
      (i32.store8 (i32.add (local.get $at) (i32.const 3)) (i32.const 34))
      (i32.store8 (i32.add (local.get $at) (i32.const 4)) (i32.const 58))
      (local.set $at (i32.add (local.get $at) (i32.const 5)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $open (i32.lt_u (local.get $i) (i32.const 20000))))
    (i32.store8 (local.get $at) (i32.const 48))  ;; the innermost value: 0
    (local.set $at (i32.add (local.get $at) (i32.const 1)))
    (memory.fill (local.get $at) (i32.const 125) (i32.const 20000))  ;; '}'
    (local.set $at (i32.add (local.get $at) (i32.const 20000)))
    (i32.store (i32.const 4096) (i32.sub (local.get $at) (i32.const 4100)))
    (i32.const 4096))
)
