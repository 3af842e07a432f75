from helm_e2e.cli.main import main

main()
