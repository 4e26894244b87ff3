from tavus_simulator.cli import main

main()
