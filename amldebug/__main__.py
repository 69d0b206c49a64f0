from amldebug.cli import main

main()
