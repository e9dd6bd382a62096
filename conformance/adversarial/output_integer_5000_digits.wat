;; A 5,000-digit integer 1999...9: exact only as a bignum (and over CPython's 4,300-digit
;; int-parsing limit).
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 4096) (i32.const 5000))
    (memory.fill (i32.const 4100) (i32.const 57) (i32.const 5000))  ;; '9'
    (i32.store8 (i32.const 4100) (i32.const 49))                     ;; leading '1'
    (i32.const 4096))
)
