"""`python -m services.voucher`: run one voucher consumer until SIGTERM or SIGINT."""

from services.voucher.bootstrap import SERVICE, bootstrap
from services.voucher.settings import VoucherSettings
from shared.consumer_service import main

if __name__ == "__main__":
    main(SERVICE, VoucherSettings, bootstrap)
