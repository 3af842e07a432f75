from helm_e2e.cli.main import main

if __name__ == "__main__":  # not when multiprocessing's fork server re-imports the main module
    raise SystemExit(main())
