using System;

namespace Shop
{
    public class Cart
    {
        public decimal Total { get; private set; }

        public void Add(decimal price)
        {
            if (price < 0) throw new ArgumentOutOfRangeException(nameof(price));
            Total += price;
        }
    }
}
