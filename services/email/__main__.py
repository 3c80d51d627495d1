"""`python -m services.email`: run one email consumer until SIGTERM or SIGINT."""

from shared import stop_signals

stop_signals.remember()  # before the imports below, which take a while

from services.email.bootstrap import SERVICE, bootstrap  # noqa: E402
from services.email.settings import EmailSettings  # noqa: E402
from shared.consumer_service import main  # noqa: E402

if __name__ == "__main__":
    main(SERVICE, EmailSettings, bootstrap)
