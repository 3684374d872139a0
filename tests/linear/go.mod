module imlog.test/linear

go 1.22.7

require github.com/anishathalye/porcupine v1.3.1
