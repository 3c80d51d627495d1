"""`python -m services.notification`: run one notification consumer, with its feed server,
until SIGTERM or SIGINT."""

from shared import stop_signals

stop_signals.remember()  # before the imports below, which take a while

from services.notification.bootstrap import SERVICE, bootstrap  # noqa: E402
from services.notification.settings import NotificationSettings  # noqa: E402
from shared.consumer_service import main  # noqa: E402

if __name__ == "__main__":
    main(SERVICE, NotificationSettings, bootstrap)
