from services.bookingctl.cli import main

main()
