from hookops.cli import main

main()
