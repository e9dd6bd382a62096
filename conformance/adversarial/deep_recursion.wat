;; Unbounded recursion with a big frame (many live i64 locals): exhausts the 512 KiB wasm stack.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $recurse_forever (param $n i64) (result i64)
    (local $a i64) (local $b i64) (local $c i64) (local $d i64)
    (local.set $a (i64.add (local.get $n) (i64.const 1)))
    (local.set $b (i64.mul (local.get $a) (i64.const 3)))
    (local.set $c (i64.xor (local.get $b) (local.get $a)))
    (local.set $d (call $recurse_forever (local.get $c)))
    (i64.add (i64.add (local.get $a) (local.get $b)) (i64.add (local.get $c) (local.get $d))))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.wrap_i64 (call $recurse_forever (i64.const 0))))
)
