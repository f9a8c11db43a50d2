#!/bin/sh
echo "not json TOKENsecretPLUGIN0123456789 {"
