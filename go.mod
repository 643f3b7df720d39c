module github.com/m3ae-edge/m3ae-edge

go 1.26

require github.com/nfnt/resize v0.0.0-20180221191011-83c6a9932646 // indirect
