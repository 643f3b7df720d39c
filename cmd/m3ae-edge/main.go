// Command m3ae-edge prepares data for, trains, exports and runs M3AE models.
// Run m3ae-edge --help for the commands.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
