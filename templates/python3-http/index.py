"""Entry point of the ironfaas python3-http template: `python3 index.py`."""
import ironfaas_http

ironfaas_http.main()
