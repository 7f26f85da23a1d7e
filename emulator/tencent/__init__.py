"""The Tencent IM: its callback wire, its replies and how its backend and clients behave."""
