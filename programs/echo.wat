;; Receives messages on handle 0, sends them back upper-cased on handle 1, and exits once
;; every sender of handle 0 has closed.
(module
  (import "k23" "send" (func $send (param i32 i32 i32) (result i32)))
  (import "k23" "recv" (func $recv (param i32 i32 i32) (result i32)))
  (import "k23" "print" (func $print (param i32 i32) (result i32)))
  (import "k23" "exit" (func $exit (param i32)))
  (memory 1)
  (data (i32.const 0x100) "echo: the channel is closed, exiting\n")   ;; 37
  (func (export "_start") (local $n i32) (local $j i32) (local $byte i32)
    (loop $next
      (local.set $n (call $recv (i32.const 0) (i32.const 0) (i32.const 256)))
      ;; -3: every sender closed and nothing is left.
      (if (i32.eq (local.get $n) (i32.const -3))
        (then
          (drop (call $print (i32.const 0x100) (i32.const 37)))
          (call $exit (i32.const 0))))
      (if (i32.lt_s (local.get $n) (i32.const 0)) (then (call $exit (i32.const 1))))
      (local.set $j (i32.const 0))
      (block $done
        (loop $upper
          (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $byte (i32.load8_u (local.get $j)))
          (if (i32.and (i32.ge_u (local.get $byte) (i32.const 97))
                       (i32.le_u (local.get $byte) (i32.const 122)))
            (then (i32.store8 (local.get $j) (i32.sub (local.get $byte) (i32.const 32)))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $upper)))
      (if (i32.lt_s (call $send (i32.const 1) (i32.const 0) (local.get $n)) (i32.const 0))
        (then (call $exit (i32.const 2))))
      (br $next))))
