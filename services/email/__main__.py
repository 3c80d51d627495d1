"""`python -m services.email`: run one email consumer until SIGTERM or SIGINT."""

from services.email.bootstrap import SERVICE, bootstrap
from services.email.settings import EmailSettings
from shared.consumer_service import main

if __name__ == "__main__":
    main(SERVICE, EmailSettings, bootstrap)
