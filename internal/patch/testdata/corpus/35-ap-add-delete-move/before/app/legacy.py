# legacy
