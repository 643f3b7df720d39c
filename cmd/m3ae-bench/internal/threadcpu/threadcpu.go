// Package threadcpu reads the CPU time of the calling OS thread. m3ae-bench
// times single-threaded kernels with it in place of wall time: on a shared
// machine, other processes delay a call, but the CPU time the call uses
// stays about the same.
//
// A caller must hold runtime.LockOSThread across the readings it compares,
// so that they come from one thread, and that thread runs no other
// goroutine.
package threadcpu
