;; The manifest gives it 16384 pages (1 GiB) up front; it memory.fills all of it, forever.
;; One fill is a single instruction (no epoch check inside), so the deadline can only stop it
;; between fills: the worst case is the timeout plus one 1-GiB fill.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $fill_everything_forever (export "run") (param $ptr i32) (param $len i32) (result i32)
    (local $byte i32)
    (loop $again
      (memory.fill (i32.const 0) (local.get $byte) (i32.shl (memory.size) (i32.const 16)))
      (local.set $byte (i32.add (local.get $byte) (i32.const 1)))
      (br $again))
    (i32.const 0))
)
