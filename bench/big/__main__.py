from bench.big.cli import main

main()
