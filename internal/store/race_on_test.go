//go:build race

package store

// raceOn: the race detector slows the store about tenfold, so the long
// history test builds a shorter one.
const raceOn = true
