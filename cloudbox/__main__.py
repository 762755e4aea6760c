from cloudbox.cli import main

main()
