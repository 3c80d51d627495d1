"""`python -m services.notification`: run one notification consumer, with its feed server,
until SIGTERM or SIGINT."""

from services.notification.bootstrap import SERVICE, bootstrap
from services.notification.settings import NotificationSettings
from shared.consumer_service import main

if __name__ == "__main__":
    main(SERVICE, NotificationSettings, bootstrap)
