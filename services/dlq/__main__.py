from services.dlq.cli import main

main()
