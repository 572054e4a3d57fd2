;; Prints five ticks, 100 ms apart, while the spinner keeps a CPU busy.
(module
  (import "k23" "print" (func $print (param i32 i32) (result i32)))
  (import "k23" "sleep" (func $sleep (param i64)))
  (memory 1)
  (data (i32.const 0) "ticker: tick 1\n")   ;; 15
  (func (export "_start") (local $i i32)
    (loop $next
      (call $sleep (i64.const 100000000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (i32.store8 (i32.const 13) (i32.add (i32.const 48) (local.get $i)))
      (drop (call $print (i32.const 0) (i32.const 15)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 5))))))
