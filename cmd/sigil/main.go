// Command sigil is the sigil secrets server and its command-line tools.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}
